const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function worker() {
    try {
        try {
            await sleep(50);
            console.log("worker: woke");
        } catch (e) {
            console.log("worker: catch saw", e);
        }
    } finally {
        console.log("worker: finally");
    }
}
async function main() {
    const w = worker();
    await sleep(10);
    console.log("main returns");
}
main();
