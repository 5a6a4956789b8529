const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    setTimeout(() => { console.log("a: 1 ms"); }, 1);
    setTimeout(() => { console.log("b: 0 ms"); }, 0);
    await sleep(20);
}
main();
