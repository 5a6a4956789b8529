const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function task(name) {
    console.log(name, "step 1");
    await sleep(0);
    console.log(name, "step 2");
}
async function main() {
    queueMicrotask(() => { console.log("cb 1"); });
    const t = task("T");
    queueMicrotask(() => { console.log("cb 2"); });
    await sleep(0);
    console.log("main resumed");
    await t;
}
main();
