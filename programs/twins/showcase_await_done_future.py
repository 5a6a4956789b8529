import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: print("queued callback"))
    f = loop.create_future()
    f.set_result("done value")
    v = await f
    print("after await:", v)
    await asyncio.sleep(0)
    print("after sleep(0)")

asyncio.run(main())
