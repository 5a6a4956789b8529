const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    setTimeout(() => { console.log("timer A (0 ms)"); }, 0);
    queueMicrotask(() => {
        console.log("callback 1");
        queueMicrotask(() => { console.log("callback 3 (queued by 1)"); });
    });
    setTimeout(() => { console.log("timer B (0 ms)"); }, 0);
    queueMicrotask(() => { console.log("callback 2"); });
    await sleep(10);
}
main();
