console.log("a", new Promise((resolve, reject) => { throw "boom"; }), "b", [1, 2].length);
setTimeout(() => console.log("never: the unhandled rejection ends the process"), 0);
