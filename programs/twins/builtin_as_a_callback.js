setTimeout(console.log, 20, "second timer:", 2);
setTimeout((x) => { console.log("first timer:", x); }, 10, 1);
setTimeout(console.log, 30, "third timer", "with", 3, "arguments");
setTimeout(() => console.log("main ends"), 50);
