const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    setTimeout(() => { console.log("timer fires"); }, 10);
    const p = Promise.reject("nobody handles this");
    console.log("main continues");
    await sleep(20);
    console.log("main done");
}
main();
