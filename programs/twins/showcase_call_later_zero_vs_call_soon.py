import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0, lambda: print("timer A (0 ms)"))
    def callback1():
        print("callback 1")
        loop.call_soon(lambda: print("callback 3 (queued by 1)"))
    loop.call_soon(callback1)
    loop.call_later(0, lambda: print("timer B (0 ms)"))
    loop.call_soon(lambda: print("callback 2"))
    await asyncio.sleep(0.010)

asyncio.run(main())
