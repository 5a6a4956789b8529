function work(ms) { const end = Date.now() + ms; while (Date.now() < end) {} }
setImmediate(() => { console.log("immediate"); });
setTimeout(() => { console.log("timeout 0"); }, 0);
work(5);
console.log("script ends");
