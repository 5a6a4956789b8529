setTimeout(() => { console.log("a: 20.9 ms"); }, 20.9);
setTimeout(() => { console.log("b: 20 ms"); }, 20);
setTimeout(() => { console.log("c: -5 ms (runs as 1 ms)"); }, -5);
setTimeout(() => { console.log("d: 0 ms (runs as 1 ms)"); }, 0);
setTimeout(() => { console.log("e: 10 ms"); }, 10);
