# The seed's fetch_all with the network simulated: the session is a plain
# dict (its open/close printed where `async with` would enter and exit), and
# each GET is a sleep of the URL's latency. gather(*tasks) is looplab's
# Promise.all(tasks), which under asyncio is gather.
import asyncio

LATENCY = {
    "https://api.example.com/users/1": 0.300,
    "https://api.example.com/users/2": 0.100,
    "https://api.example.com/users/3": 0.200,
}

async def fetch_all(urls: list[str]) -> list[dict]:
    session = {"name": "session"}
    print("session opened")
    try:
        tasks = [fetch_one(session, url) for url in urls]
        return await asyncio.gather(*tasks)
    finally:
        print("session closed")

async def fetch_one(session, url: str) -> dict:
    print(session["name"], "GET", url)
    await asyncio.sleep(LATENCY[url])
    print(session["name"], "200", url)
    return {"url": url, "status": 200}

async def main():
    results = await fetch_all([
        "https://api.example.com/users/1",
        "https://api.example.com/users/2",
        "https://api.example.com/users/3",
    ])
    for r in results:
        print(r)

asyncio.run(main())
