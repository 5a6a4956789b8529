const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    queueMicrotask(() => { console.log("queued callback"); });
    const f = Promise.resolve("done value");
    const v = await f;
    console.log("after await:", v);
    await sleep(0);
    console.log("after sleep(0)");
}
main();
