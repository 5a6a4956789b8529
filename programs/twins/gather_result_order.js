const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function job(name, ms) {
    console.log(name, "start");
    await sleep(ms);
    console.log(name, "end");
    return name + " result";
}
async function main() {
    const results = await Promise.all([job("slow", 30), job("fast", 10), job("mid", 20)]);
    console.log(results);
}
main();
