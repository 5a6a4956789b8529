const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function job(name, ms) {
    console.log(name, "start");
    await sleep(ms);
    console.log(name, "end");
    return name + " result";
}
async function main() {
    const results = await Promise.all([job("slow", 45), job("fast", 15), job("mid", 30)]);
    console.log(results);
}
main();
