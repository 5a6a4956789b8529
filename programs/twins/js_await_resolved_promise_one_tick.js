function tick(n) { console.log("tick", n); if (n < 5) { queueMicrotask(() => { tick(n + 1); }); } }
queueMicrotask(() => { tick(1); });
async function a() {
    const v = await Promise.resolve("resolved");
    console.log("a: resumed with", v);
}
async function b() {
    const p = new Promise((resolve) => {
        queueMicrotask(() => { queueMicrotask(() => { console.log("b: resolving"); resolve("later"); }); });
    });
    const v = await p;
    console.log("b: resumed with", v);
}
a();
b();
