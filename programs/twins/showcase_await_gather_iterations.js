const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function tick(n) { console.log("tick", n); if (n < 4) { queueMicrotask(() => { tick(n + 1); }); } }
async function child(name) {
    console.log(name, "runs");
    return name;
}
async function main() {
    queueMicrotask(() => { tick(1); });
    const r = await Promise.all([child("a"), child("b")]);
    console.log("main got", r);
    await sleep(10);
}
main();
