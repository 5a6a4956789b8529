async function save(x) {
    console.log("saving", x);
    return x;
}
async function main() {
    save(1);
    await save(2);
    const c = save(3);
    console.log("coroutine 3 created");
    await c;
    console.log("done");
}
main();
