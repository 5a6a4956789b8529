const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function bystander() {
    try {
        await sleep(50);
        console.log("bystander: woke");
    } finally {
        console.log("bystander: finally");
    }
}
async function main() {
    const b = bystander();
    await sleep(10);
    console.log("main: raising");
    throw "main failed";
}
main();
