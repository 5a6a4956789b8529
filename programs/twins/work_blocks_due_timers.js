const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function work(ms) { const end = Date.now() + ms; while (Date.now() < end) {} }
async function main() {
    setTimeout(() => { console.log("A: 20 ms timer set before the work"); }, 20);
    queueMicrotask(() => { console.log("callback queued before the work"); });
    console.log("work starts");
    work(40);
    console.log("work done");
    setTimeout(() => { console.log("B: 0 ms timer set after the work"); }, 0);
    await sleep(10);
}
main();
