import asyncio

async def sleeper(name):
    await asyncio.sleep(0.010)
    print(name, "woke")
    asyncio.get_running_loop().call_soon(lambda: print(name, "callback"))

async def main():
    await asyncio.gather(sleeper("A"), sleeper("B"))
    await asyncio.sleep(0.010)

asyncio.run(main())
