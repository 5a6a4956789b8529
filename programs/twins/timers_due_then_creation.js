const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    setTimeout(() => { console.log("30ms"); }, 30);
    setTimeout(() => { console.log("10ms a"); }, 10);
    setTimeout(() => { console.log("0ms"); }, 0);
    setTimeout(() => { console.log("10ms b"); }, 10);
    setTimeout(() => { console.log("20ms"); }, 20);
    await sleep(50);
}
main();
