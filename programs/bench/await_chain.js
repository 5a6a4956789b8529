// bench: await_chain — twin of await_chain.lab. 1,000,000 awaits of one
// already-resolved native promise in a loop inside one async function; each
// await resumes in a microtask. The async IIFE is looplab's top level (an
// async main called once by the script).
async function chain(n) {
  const p = Promise.resolve(1);
  let s = 0;
  for (let i = 0; i < n; i++) {
    const v = await p;
    s = s + v;
  }
  return s;
}
(async function main() {
  console.log(await chain(1000000));
})();
