const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    setTimeout(() => {
        console.log("timer 1");
        queueMicrotask(() => { console.log("microtask 1"); });
    }, 0);
    setTimeout(() => {
        console.log("timer 2");
        queueMicrotask(() => { console.log("microtask 2"); });
    }, 0);
    await sleep(20);
}
main();
