import asyncio
async def worker():
    try:
        await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        print("swallowed")
    await asyncio.sleep(0.01)
    print("worker goes on")
    return "done"
async def main():
    t = asyncio.create_task(worker())
    await asyncio.sleep(0.01)
    print(t.cancel())
    print(await t, t.cancelled())
    g = asyncio.gather(worker(), worker())
    await asyncio.sleep(0.01)
    print(g.cancel())
    try:
        print(await g)
    except asyncio.CancelledError:
        print("gather cancelled", g.cancelled())
asyncio.run(main())
