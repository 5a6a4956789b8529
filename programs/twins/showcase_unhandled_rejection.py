import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.010, lambda: print("timer fires"))
    p = loop.create_future()
    p.set_exception(Exception("nobody handles this"))
    print("main continues")
    await asyncio.sleep(0.020)
    print("main done")

asyncio.run(main())
