async function awaits_thenables() {
    let thenable = { then: function (resolve, reject) { resolve(42); } };
    console.log("await-awaits-thenables:", await thenable);
}
async function awaits_thenables_that_throw() {
    let error = { name: "the error" };
    let thenable = { then: function (resolve, reject) { throw error; } };
    let caught = false;
    try { await thenable; } catch (e) { caught = true; console.log("await-awaits-thenables-that-throw: caught", e); }
    console.log("caught:", caught);
}
async function awaits_thenable_not_callable() {
    let thenable = { then: 42 };
    let res = await thenable;
    console.log("await-awaits-thenable-not-callable:", res);
}
async function throws_after_resolve() {
    let thenable = { then: function (resolve, reject) { resolve("resolved first"); throw "ignored"; } };
    console.log("throw after resolve:", await thenable);
}
awaits_thenables();
awaits_thenables_that_throw();
awaits_thenable_not_callable();
throws_after_resolve();
