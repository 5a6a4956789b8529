async function task() {
    console.log("Start");
    await new Promise(r => setTimeout(r, 1000));
    console.log("End");
}
async function main() {
    await task();
}
main();
