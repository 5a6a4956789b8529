// bench: list_map — twin of list_map.lab. A looplab map is a hash map with
// string keys, so the honest JS equivalent is Map (not a plain object).
function lists(n) {
  const xs = [];
  for (let i = 0; i < n; i++) {
    xs.push(i);
  }
  let s = 0;
  for (let i = 0; i < xs.length; i++) {
    s = s + xs[i];
  }
  console.log(xs.length, s);
}
function maps(n) {
  const m = new Map();
  for (let i = 0; i < n; i++) {
    m.set("k" + String(i), i);
  }
  let s = 0;
  for (let i = 0; i < n; i++) {
    s = s + m.get("k" + String(i));
  }
  console.log(m.size, s);
}
lists(1000000);
maps(200000);
