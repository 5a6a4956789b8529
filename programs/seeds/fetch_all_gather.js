// The Python seed's fetch_all under the js policy: fetchOne starts eagerly
// when called; Promise.all keeps argument order.
const LATENCY = {
    "https://api.example.com/users/1": 300,
    "https://api.example.com/users/2": 100,
    "https://api.example.com/users/3": 200,
};
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

async function fetchOne(session, url) {
    console.log(session.name, "GET", url);
    await sleep(LATENCY[url]);
    console.log(session.name, "200", url);
    return { url: url, status: 200 };
}

async function fetchAll(urls) {
    const session = { name: "session" };
    console.log("session opened");
    try {
        const tasks = [];
        for (const url of urls) tasks.push(fetchOne(session, url));
        return await Promise.all(tasks);
    } finally {
        console.log("session closed");
    }
}

async function main() {
    const results = await fetchAll([
        "https://api.example.com/users/1",
        "https://api.example.com/users/2",
        "https://api.example.com/users/3",
    ]);
    for (const r of results) console.log(r);
}
main();
