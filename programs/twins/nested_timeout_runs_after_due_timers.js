const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    setTimeout(() => {
        console.log("outer 1");
        setTimeout(() => { console.log("inner (set by outer 1)"); }, 0);
    }, 0);
    setTimeout(() => { console.log("outer 2"); }, 0);
    await sleep(20);
}
main();
