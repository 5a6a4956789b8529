import asyncio

async def main():
    try:
        v = await 42
        print("await 42 gave", v)
    except Exception as e:
        print("caught:", e)
    print("done")

asyncio.run(main())
