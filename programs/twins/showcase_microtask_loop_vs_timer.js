const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function m(n) { console.log("microtask", n); if (n < 4) { queueMicrotask(() => { m(n + 1); }); } }
async function main() {
    setTimeout(() => { console.log("timer (0 ms)"); }, 0);
    queueMicrotask(() => { m(1); });
    await sleep(20);
}
main();
