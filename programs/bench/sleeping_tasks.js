// bench: sleeping_tasks — twin of sleeping_tasks.lab: 1,000,000 async function
// calls, each awaiting a 1000 ms timer promise (looplab's js `sleep`), then
// Promise.all.
function sleep(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms); });
}
async function sleeper(i) {
  await sleep(1000);
  return 1;
}
async function main(n) {
  const ts = [];
  for (let i = 0; i < n; i++) {
    ts.push(sleeper(i));
  }
  const rs = await Promise.all(ts);
  let s = 0;
  for (const r of rs) {
    s = s + r;
  }
  console.log(rs.length, s);
}
main(1000000);
