const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    queueMicrotask(() => { console.log("queued callback"); });
    const f = Promise.reject("stored error");
    try {
        await f;
    } catch (e) {
        console.log("caught:", e);
    }
    await sleep(0);
    console.log("after sleep(0)");
}
main();
