import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.001, lambda: print("a: 1 ms"))
    loop.call_later(0, lambda: print("b: 0 ms"))
    await asyncio.sleep(0.020)

asyncio.run(main())
