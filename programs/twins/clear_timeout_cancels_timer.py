import asyncio

async def main():
    loop = asyncio.get_running_loop()
    b = None
    def a():
        print("A fires and cancels B")
        b.cancel()
    loop.call_later(0.010, a)
    b = loop.call_later(0.020, lambda: print("B never fires"))
    loop.call_later(0.030, lambda: print("C fires"))
    await asyncio.sleep(0.040)

asyncio.run(main())
