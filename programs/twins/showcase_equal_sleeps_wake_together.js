const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function sleeper(name) {
    await sleep(10);
    console.log(name, "woke");
    queueMicrotask(() => { console.log(name, "callback"); });
}
async function main() {
    await Promise.all([sleeper("A"), sleeper("B")]);
    await sleep(10);
}
main();
