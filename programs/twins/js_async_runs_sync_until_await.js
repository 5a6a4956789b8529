async function f() {
    console.log("f: before await");
    await undefined;
    console.log("f: after await");
}
console.log("main: before call");
f();
console.log("main: after call");
