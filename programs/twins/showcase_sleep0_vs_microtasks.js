const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function tick(n) { console.log("tick", n); if (n < 3) { queueMicrotask(() => { tick(n + 1); }); } }
async function main() {
    queueMicrotask(() => { tick(1); });
    console.log("main: sleep(0) #1");
    await sleep(0);
    console.log("main: sleep(0) #2");
    await sleep(0);
    console.log("main: sleep(0) #3");
    await sleep(0);
    console.log("main: done");
}
main();
