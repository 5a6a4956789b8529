function row(w) {
    const label = "width " + w;
    return [label, "-".repeat(w - 10 - label.length)];
}
for (let w = 69; w < 75; w++) console.log(row(w));
for (let w = 69; w < 75; w++) {
    const label = "width " + w;
    console.log({label: label, pad: "-".repeat(w - 22 - label.length)});
}
for (let w = 67; w < 72; w++) console.log({inner: row(w)});
const twenty = [];
for (let i = 0; i < 20; i++) twenty.push("item " + i + " " + "-".repeat(14 - String(i).length));
console.log(twenty);
console.log({nested: twenty});
