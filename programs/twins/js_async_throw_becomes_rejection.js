async function bad() {
    console.log("bad: runs synchronously");
    throw "bad error";
}
let p = undefined;
try {
    p = bad();
    console.log("after calling bad: no exception here");
} catch (e) {
    console.log("never: sync catch", e);
}
p.catch((e) => { console.log("caught later:", e); });
console.log("script end");
