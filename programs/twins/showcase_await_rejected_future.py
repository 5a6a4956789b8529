import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: print("queued callback"))
    f = loop.create_future()
    f.set_exception(Exception("stored error"))
    try:
        await f
    except Exception as e:
        print("caught:", e)
    await asyncio.sleep(0)
    print("after sleep(0)")

asyncio.run(main())
