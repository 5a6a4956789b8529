async function main() {
    try {
        const v = await 42;
        console.log("await 42 gave", v);
    } catch (e) {
        console.log("caught:", e);
    }
    console.log("done");
}
main();
