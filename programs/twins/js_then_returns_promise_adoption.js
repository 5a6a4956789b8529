Promise.resolve().then(() => { console.log("a1"); return Promise.resolve("x"); }).then((v) => { console.log("a2 got", v); });
Promise.resolve().then(() => { console.log("b1"); }).then(() => { console.log("b2"); }).then(() => { console.log("b3"); }).then(() => { console.log("b4"); }).then(() => { console.log("b5"); });
