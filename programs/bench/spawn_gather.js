// bench: spawn_gather — twin of spawn_gather.lab: 100,000 async function
// calls (looplab's js `spawn` calls the function, which starts eagerly and
// returns its promise), then Promise.all.
async function job(i) {
  return i * 2;
}
async function main(n) {
  const ts = [];
  for (let i = 0; i < n; i++) {
    ts.push(job(i));
  }
  const rs = await Promise.all(ts);
  let s = 0;
  for (const r of rs) {
    s = s + r;
  }
  console.log(rs.length, s);
}
main(100000);
