import asyncio

async def job(name, ms, fail):
    await asyncio.sleep(ms / 1000)
    if fail:
        print(name, "fails")
        raise Exception(name + " failed")
    print(name, "ends")
    return name

async def main():
    try:
        r = await asyncio.gather(job("a", 25, False), job("b", 10, True), job("c", 40, False))
        print("never:", r)
    except Exception as e:
        print("caught:", e)
    await asyncio.sleep(0.045)
    print("main done")

asyncio.run(main())
