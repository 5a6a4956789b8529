let p = new Promise((resolve) => { setTimeout(() => { resolve("p's value"); }, 10); });
let a = new Promise((resolve, reject) => { resolve(p); throw "ignored after resolve(p)"; });
let b = new Promise((resolve, reject) => { throw "thrown first"; });
let c = new Promise((resolve, reject) => { reject("rejected"); throw "ignored after reject"; });
let d = new Promise((resolve, reject) => { resolve(1); throw "ignored after resolve(1)"; });
a.then((v) => { console.log("a fulfilled:", v); }, (e) => { console.log("a rejected:", e); });
b.then((v) => { console.log("b fulfilled:", v); }, (e) => { console.log("b rejected:", e); });
c.then((v) => { console.log("c fulfilled:", v); }, (e) => { console.log("c rejected:", e); });
d.then((v) => { console.log("d fulfilled:", v); }, (e) => { console.log("d rejected:", e); });
