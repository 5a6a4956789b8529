async function inner(name) {
    console.log(name, "inner");
    return name;
}
async function outer(name) {
    console.log(name, "start");
    await inner(name + "1");
    await inner(name + "2");
    console.log(name, "end");
}
async function main() {
    const a = outer("A");
    const b = outer("B");
    await a;
    await b;
}
main();
