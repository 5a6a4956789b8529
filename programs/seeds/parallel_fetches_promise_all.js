// The seed's fetchUserData with fetch simulated: a response arrives after the
// route's latency, and r.json() reads the body after 50 ms more.
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
const routes = {
    "/api/users/7": { latency: 300, body: { id: 7, name: "Ada" } },
    "/api/users/7/posts": { latency: 100, body: ["Hello", "Event loops"] },
    "/api/users/7/comments": { latency: 200, body: ["Nice post"] },
};

async function fetch(url) {
    console.log("GET", url);
    await sleep(routes[url].latency);
    console.log("response", url);
    return { url: url, body: routes[url].body };
}

async function readJson(response) {
    await sleep(50);
    console.log("json", response.url);
    return response.body;
}

// Fetch multiple resources in parallel
async function fetchUserData(userId) {
  const [user, posts, comments] = await Promise.all([
    fetch(`/api/users/${userId}`).then(r => readJson(r)),
    fetch(`/api/users/${userId}/posts`).then(r => readJson(r)),
    fetch(`/api/users/${userId}/comments`).then(r => readJson(r)),
  ]);

  return { user, posts, comments };
}

async function main() {
    const data = await fetchUserData(7);
    console.log("user:", data.user);
    console.log("posts:", data.posts);
    console.log("comments:", data.comments);
}
main();
