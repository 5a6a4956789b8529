const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    const f = new Promise((resolve) => {
        setTimeout(() => {
            console.log("resolving");
            resolve("v");
            queueMicrotask(() => { console.log("callback queued after resolve"); });
        }, 10);
    });
    f.then((v) => { console.log("then 1 got", v); return "x"; }).then((v) => { console.log("then 1b got", v); });
    f.then((v) => { console.log("then 2 got", v); });
    const v = await f;
    console.log("main resumed with", v);
    await sleep(10);
}
main();
