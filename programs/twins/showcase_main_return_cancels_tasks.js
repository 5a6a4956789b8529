const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function worker(name, ms) {
    try {
        console.log(name, "started");
        await sleep(ms);
        console.log(name, "finished");
    } finally {
        console.log(name, "finally");
    }
}
async function main() {
    const quick = worker("quick", 10);
    const slow = worker("slow", 50);
    await sleep(20);
    console.log("main returns");
}
main();
