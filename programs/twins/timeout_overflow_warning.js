// Twin of timeout_overflow_warning.lab.
setTimeout(() => console.log("a"), 2147483648);
setTimeout(() => console.log("b"), 3e9);
process.nextTick(() => console.log("tick"));
setTimeout(() => console.log("max"), 2147483647 - 2147483646);
console.log("main");
