const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function tick(n) { console.log("tick", n); if (n < 3) { queueMicrotask(() => { tick(n + 1); }); } }
async function child() {
    console.log("child runs");
    return "child result";
}
async function main() {
    const t = child();
    queueMicrotask(() => { tick(1); });
    const v = await t;
    console.log("main got", v);
    await sleep(10);
}
main();
