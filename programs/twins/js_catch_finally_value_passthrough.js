Promise.resolve("v1").finally((x) => { console.log("finally 1 got", x); return "ignored"; }).then((v) => { console.log("then after finally 1:", v); });
Promise.reject("e2").finally(() => { console.log("finally 2"); }).catch((e) => { console.log("catch after finally 2:", e); });
Promise.resolve("v3").finally(() => { throw "thrown in finally 3"; }).then((v) => { console.log("not reached", v); }, (e) => { console.log("rejection handler 3:", e); });
Promise.reject("e4").catch((e) => { console.log("catch 4:", e); return "value from catch 4"; }).then((v) => { console.log("then after catch 4:", v); });
