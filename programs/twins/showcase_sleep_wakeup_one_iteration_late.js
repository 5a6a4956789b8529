const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function sleeper() {
    await sleep(10);
    console.log("sleeper woke (its timer set first)");
}
async function main() {
    const s = sleeper();
    await sleep(0);
    setTimeout(() => { console.log("timer callback (set second)"); }, 10);
    await s;
    await sleep(10);
}
main();
